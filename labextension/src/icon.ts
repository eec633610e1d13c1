import { LabIcon } from '@jupyterlab/ui-components';

/** The Agent panel's side-bar icon: a speech bubble with a spark (theme-aware fill). */
export const agentIcon = new LabIcon({
  name: 'jupyter-agent:agent',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v11h2v2l2.5-2H20V5H4z"/>
  <path class="jp-icon3" fill="#616161" d="M12 6.5l1.1 2.4 2.4 1.1-2.4 1.1L12 13.5l-1.1-2.4L8.5 10l2.4-1.1z"/>
</svg>`
});
