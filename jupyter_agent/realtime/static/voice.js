// jupyter-agent voice widget (anywidget ESM): microphone capture, level meter, transcripts, playback.
//
// Capture: getUserMedia -> AudioWorklet that mixes to mono, resamples to 24 kHz (linear
// interpolation) and emits PCM16 LE frames of `frame_samples` samples; each frame goes to the
// kernel as a custom message with one binary buffer. Playback: server PCM16 chunks (custom
// messages with a buffer) are scheduled back to back on one AudioContext (gapless); a
// `barge_in` message stops everything queued and reports how much of the item was heard.

const WORKLET = `
class JAPcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.outRate = o.outRate || 24000;
    this.frameSamples = o.frameSamples || 480;
    this.step = sampleRate / this.outRate;   // input samples per output sample
    this.pos = 0;                            // read position; -1 = last sample of the previous block
    this.prev = 0;
    this.out = new Int16Array(this.frameSamples);
    this.n = 0;
    this.sumSq = 0;
    this.active = true;
    this.port.onmessage = (e) => { if (e.data === 'stop') { this.active = false; } };
  }
  process(inputs) {
    if (!this.active) { return false; }
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) { return true; }
    const chans = input.length;
    const len = input[0].length;
    const mono = new Float32Array(len);
    for (let c = 0; c < chans; c++) {
      const d = input[c];
      for (let i = 0; i < len; i++) { mono[i] += d[i] / chans; }
    }
    while (this.pos <= len - 1) {
      const i0 = Math.floor(this.pos);
      const frac = this.pos - i0;
      const a = i0 < 0 ? this.prev : mono[i0];
      const b = i0 + 1 <= len - 1 ? mono[i0 + 1] : a;
      let v = a + (b - a) * frac;
      v = v > 1 ? 1 : (v < -1 ? -1 : v);
      this.out[this.n++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
      this.sumSq += v * v;
      if (this.n === this.frameSamples) {
        const rms = Math.sqrt(this.sumSq / this.n);
        const buf = this.out.buffer;
        this.port.postMessage({ pcm: buf, rms }, [buf]);
        this.out = new Int16Array(this.frameSamples);
        this.n = 0;
        this.sumSq = 0;
      }
      this.pos += this.step;
    }
    this.pos -= len;
    this.prev = mono[len - 1];
    return true;
  }
}
registerProcessor('ja-pcm-capture', JAPcmCapture);
`;

const MESSAGES = {
  NotAllowedError: 'Microphone permission was denied. Allow microphone access for this page and try again.',
  SecurityError: 'Microphone permission was denied. Allow microphone access for this page and try again.',
  NotFoundError: 'No microphone was found. Connect a microphone and try again.',
  OverconstrainedError: 'No microphone was found. Connect a microphone and try again.',
  NotReadableError: 'The microphone is in use by another application or could not be opened.',
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined) { e.textContent = text; }
  return e;
}

function render({ model, el: root }) {
  const wrap = el('div', 'ja-voice');
  const bar = el('div', 'ja-voice-bar');
  const mic = el('button', 'ja-voice-mic', 'Start talking');
  mic.type = 'button';
  mic.setAttribute('aria-pressed', 'false');
  const meter = el('div', 'ja-voice-meter');
  const level = el('div', 'ja-voice-level');
  meter.appendChild(level);
  const status = el('span', 'ja-voice-status');
  const hang = el('button', 'ja-voice-hangup', 'Hang up');
  hang.type = 'button';
  bar.append(mic, meter, status, hang);
  const error = el('div', 'ja-voice-error');
  error.setAttribute('role', 'alert');
  const log = el('div', 'ja-voice-transcript');
  const form = el('form', 'ja-voice-form');
  const input = el('input', 'ja-voice-input');
  input.placeholder = 'Type a message to the voice agent';
  const send = el('button', 'ja-voice-send', 'Send');
  send.type = 'submit';
  form.append(input, send);
  wrap.append(bar, error, log, form);
  root.appendChild(wrap);

  const counters = { frames_sent: 0, samples_sent: 0, playback_chunks_received: 0, playback_samples_queued: 0 };
  let dirty = false;
  let ctx = null;
  let stream = null;
  let source = null;
  let node = null;
  let capturing = false;
  let nextTime = 0;
  const playing = new Set();
  let item = null; // {id, start, samples, rate}
  let localError = '';

  function showCounters() {
    for (const [k, v] of Object.entries(counters)) { wrap.dataset[k.replace(/_(\w)/g, (_, c) => c.toUpperCase())] = String(v); }
  }
  function bump(name, by) { counters[name] += by; dirty = true; showCounters(); }
  const flush = setInterval(() => {
    if (!dirty) { return; }
    dirty = false;
    for (const [k, v] of Object.entries(counters)) { model.set(k, v); }
    model.save_changes();
  }, 250);

  function setError(text) {
    localError = text;
    refreshError();
  }
  function refreshError() {
    const text = localError || model.get('error') || '';
    error.textContent = text;
    error.style.display = text ? 'block' : 'none';
    wrap.dataset.error = text;
  }
  function refreshStatus() {
    const s = model.get('status');
    status.textContent = { idle: 'Idle', connecting: 'Connecting…', live: 'Live', closed: 'Closed', error: 'Error' }[s] || s;
    wrap.dataset.status = s;
    hang.disabled = !(s === 'live' || s === 'connecting');
    if ((s === 'closed' || s === 'error') && capturing) { stopMic(); }
  }
  function refreshTranscript() {
    const items = model.get('transcript') || [];
    log.replaceChildren(...items.map((t) => {
      const line = el('div', `ja-voice-line ja-voice-${t.role}${t.final ? '' : ' ja-voice-partial'}`);
      line.append(el('span', 'ja-voice-role', t.role === 'user' ? 'You' : 'Agent'), el('span', 'ja-voice-text', t.text));
      return line;
    }));
    log.scrollTop = log.scrollHeight;
  }

  async function ensureContext() {
    if (!ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) { throw Object.assign(new Error('Web Audio is not available in this browser.'), { name: 'NoAudio' }); }
      ctx = new AC();
    }
    if (ctx.state === 'suspended') { try { await ctx.resume(); } catch (e) { /* resumed on next gesture */ } }
    return ctx;
  }

  async function startMic() {
    setError('');
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setError('Microphone capture needs a secure page (https or localhost) and a browser with getUserMedia.');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: false },
      });
    } catch (e) {
      setError(MESSAGES[e && e.name] || `Could not open the microphone: ${e && e.message ? e.message : e}`);
      return;
    }
    try {
      const ac = await ensureContext();
      const url = URL.createObjectURL(new Blob([WORKLET], { type: 'application/javascript' }));
      try { await ac.audioWorklet.addModule(url); } finally { URL.revokeObjectURL(url); }
      source = ac.createMediaStreamSource(stream);
      node = new AudioWorkletNode(ac, 'ja-pcm-capture', {
        numberOfInputs: 1, numberOfOutputs: 0,
        processorOptions: { outRate: model.get('sample_rate'), frameSamples: model.get('frame_samples') },
      });
      node.port.onmessage = (e) => {
        const { pcm, rms } = e.data;
        model.send({ type: 'audio', sample_rate: model.get('sample_rate'), num_channels: 1 }, undefined, [pcm]);
        bump('frames_sent', 1);
        bump('samples_sent', pcm.byteLength / 2);
        level.style.width = `${Math.min(100, Math.round(Math.sqrt(rms) * 140))}%`;
      };
      source.connect(node);
    } catch (e) {
      stopTracks();
      setError(`Could not start audio capture: ${e && e.message ? e.message : e}`);
      return;
    }
    stream.getAudioTracks().forEach((t) => t.addEventListener('ended', () => {
      if (capturing) { setError('The microphone was disconnected.'); stopMic(); }
    }));
    capturing = true;
    mic.textContent = 'Stop talking';
    mic.classList.add('ja-voice-on');
    mic.setAttribute('aria-pressed', 'true');
    wrap.dataset.mic = 'on';
    model.send({ type: 'mic', on: true });
  }

  function stopTracks() {
    if (node) { node.port.postMessage('stop'); node.port.onmessage = null; try { node.disconnect(); } catch (e) { /* gone */ } }
    if (source) { try { source.disconnect(); } catch (e) { /* gone */ } }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); }
    node = null; source = null; stream = null;
  }

  function stopMic() {
    stopTracks();
    capturing = false;
    mic.textContent = 'Start talking';
    mic.classList.remove('ja-voice-on');
    mic.setAttribute('aria-pressed', 'false');
    wrap.dataset.mic = 'off';
    level.style.width = '0%';
    model.send({ type: 'mic', on: false });
  }

  async function play(content, buffers) {
    const dv = buffers && buffers[0];
    if (!dv) { return; }
    const view = dv instanceof DataView ? dv : new DataView(dv.buffer || dv);
    const n = Math.floor(view.byteLength / 2);
    bump('playback_chunks_received', 1);
    if (n === 0) { return; }
    const rate = content.sample_rate || 24000;
    const f32 = new Float32Array(n);
    for (let i = 0; i < n; i++) { f32[i] = view.getInt16(2 * i, true) / 32768; }
    let ac;
    try { ac = await ensureContext(); } catch (e) { setError(String(e.message || e)); return; }
    const buf = ac.createBuffer(1, n, rate);
    buf.copyToChannel(f32, 0);
    const src = ac.createBufferSource();
    src.buffer = buf;
    src.connect(ac.destination);
    const at = Math.max(nextTime, ac.currentTime + 0.05);
    src.start(at);
    nextTime = at + buf.duration;
    playing.add(src);
    src.onended = () => { playing.delete(src); };
    const id = content.item_id || '';
    if (!item || item.id !== id) { item = { id, start: at, samples: 0, rate }; }
    item.samples += n;
    bump('playback_samples_queued', n);
  }

  function bargeIn() {
    if (ctx && item && item.id) {
      const heardMs = Math.max(0, Math.min((ctx.currentTime - item.start) * 1000, (item.samples / item.rate) * 1000));
      if (playing.size > 0) { model.send({ type: 'played', item_id: item.id, ms: Math.round(heardMs) }); }
    }
    for (const src of playing) { try { src.stop(); } catch (e) { /* already stopped */ } }
    playing.clear();
    nextTime = 0;
    item = null;
    wrap.dataset.bargeIns = String(Number(wrap.dataset.bargeIns || 0) + 1);
  }

  const onMsg = (content, buffers) => {
    if (!content) { return; }
    if (content.type === 'audio') { play(content, buffers); }
    else if (content.type === 'barge_in') { bargeIn(); }
  };
  model.on('msg:custom', onMsg);
  model.on('change:status', refreshStatus);
  model.on('change:error', refreshError);
  model.on('change:transcript', refreshTranscript);

  mic.addEventListener('click', () => { if (capturing) { stopMic(); } else { startMic(); } });
  hang.addEventListener('click', () => { if (capturing) { stopMic(); } bargeIn(); model.send({ type: 'hangup' }); });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) { return; }
    input.value = '';
    model.send({ type: 'text', text });
  });

  showCounters();
  refreshStatus();
  refreshError();
  refreshTranscript();

  return () => {
    clearInterval(flush);
    model.off('msg:custom', onMsg);
    model.off('change:status', refreshStatus);
    model.off('change:error', refreshError);
    model.off('change:transcript', refreshTranscript);
    if (capturing) { stopMic(); }
    bargeIn();
    if (ctx) { ctx.close(); ctx = null; }
  };
}

export default { render };
