"""Model providers: OpenAI, Azure OpenAI, Responses-compatible servers, and the embedded local model."""
