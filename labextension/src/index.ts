/**
 * jupyter-agent: the Agent side panel. It follows the active notebook and chats with the
 * jupyter_agent session in that notebook's kernel over a Jupyter comm (no server extension).
 *
 * Works in JupyterLab and in Notebook 7: only the generic `app.shell` is used (both shells take
 * widgets in their 'left'/'right' areas and show them with `activateById`). Every open notebook
 * gets its connection and document bridge when it opens, whether the panel is shown or not. In
 * Notebook 7, whose pages hold one document each, the panel joins the side area only on a page
 * with a notebook; Notebook 7 then lists it under View → Right Sidebar and in the palette.
 */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Cell, CodeCell } from '@jupyterlab/cells';
import { insertCodeBelow } from './codeBlocks';
import { AgentConnection } from './connection';
import { NotebookBridge } from './notebookBridge';
import { agentIcon } from './icon';
import { AgentPanel, IPanelSettings } from './panel';

const PLUGIN_ID = 'jupyter-agent:plugin';
const PANEL_ID = 'jupyter-agent-panel';
const TOGGLE_COMMAND = 'jupyter-agent:toggle-panel';
const FIX_COMMAND = 'jupyter-agent:fix-error';

interface ISettings extends IPanelSettings {
  position: 'left' | 'right';
  reloadAfterRestart: boolean;
}

const DEFAULTS: ISettings = {
  position: 'right',
  showReasoning: true,
  reloadAfterRestart: true,
  sendOnEnter: true
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A side panel that chats with the jupyter_agent session in the active notebook kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ISettingRegistry, ICommandPalette, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    labShell: ILabShell | null,
    registry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    const shell = app.shell;
    const settings: ISettings = { ...DEFAULTS };
    const panel = new AgentPanel({ rendermime });
    panel.id = PANEL_ID;
    panel.title.icon = agentIcon;
    panel.title.caption = 'Agent';
    panel.title.label = '';
    let area: 'left' | 'right' = settings.position;
    let placed = false;
    const place = (): void => {
      shell.add(panel, area, { rank: 1000 });
      placed = true;
    };
    if (labShell) {
      place(); // JupyterLab: there from the start, like its other side panels
    }

    const connections = new Map<NotebookPanel, AgentConnection>();
    /** Run code cell `index` of `nb` on the main shell, as the user would (outputs, count, Undo). */
    const runCell = async (nb: NotebookPanel, index: number) => {
      const widget = nb.content.widgets[index];
      if (!(widget instanceof CodeCell)) {
        throw new Error(`cell ${index} is not a code cell`);
      }
      const reply = await CodeCell.execute(widget, nb.sessionContext);
      return { status: reply ? reply.content.status : 'aborted', execution_count: widget.model.executionCount };
    };
    const notebookBridge = (nb: NotebookPanel): NotebookBridge => {
      const bridge = new NotebookBridge(nb, index => runCell(nb, index));
      // Badges for cells the agent wrote, also after Undo/Redo and on reopening the notebook.
      const mark = (): void => void requestAnimationFrame(() => bridge.markAgentCells());
      void nb.context.ready.then(() => {
        nb.content.model?.cells.changed.connect(mark);
        mark();
      });
      return bridge;
    };
    const connectionFor = (nb: NotebookPanel): AgentConnection => {
      let conn = connections.get(nb);
      if (!conn) {
        conn = new AgentConnection(nb.sessionContext, {
          reloadAfterRestart: () => settings.reloadAfterRestart,
          notebookPath: () => nb.sessionContext.path,
          bridge: notebookBridge(nb)
        });
        connections.set(nb, conn);
        nb.disposed.connect(() => {
          conn?.dispose();
          connections.delete(nb);
          if (followed === nb) {
            followed = null;
          }
          if (tracker.currentWidget === null) {
            panel.setConnection(null);
          }
        });
      }
      return conn;
    };

    // The panel's code-block buttons act on the notebook the panel follows. A clicked insert is the
    // user's own edit: the new cell gets no agent metadata and so no agent badge.
    let followed: NotebookPanel | null = null;
    panel.codeActions = {
      language: () => {
        const spec = followed?.content.model?.getMetadata('kernelspec') as { language?: string } | undefined;
        return spec?.language ?? '';
      },
      insert: async (code: string, run: boolean) => {
        const nb = followed;
        const shared = nb?.content.model?.sharedModel;
        if (!nb || !shared) {
          return;
        }
        const index = insertCodeBelow(shared, nb.content.activeCellIndex, code);
        nb.content.activeCellIndex = index;
        nb.content.deselectAll();
        if (run) {
          await runCell(nb, index);
        }
      }
    };

    const follow = (nb: NotebookPanel | null): void => {
      followed = nb;
      if (!nb) {
        panel.setConnection(null);
        return;
      }
      panel.setConnection(connectionFor(nb), nb.context.localPath.split('/').pop() ?? '');
    };
    // The bridge serves the kernel's notebook tools for every open notebook, panel shown or not.
    const track = (nb: NotebookPanel): void => {
      connectionFor(nb);
      if (!placed) {
        place(); // Notebook 7: a notebook page
      }
    };
    tracker.forEach(track);
    tracker.widgetAdded.connect((_, nb) => track(nb));
    tracker.currentChanged.connect((_, nb) => follow(nb));
    void app.restored.then(() => follow(tracker.currentWidget));

    app.commands.addCommand(TOGGLE_COMMAND, {
      label: 'Agent: Show the Agent panel',
      icon: agentIcon,
      isEnabled: () => placed,
      execute: () => {
        shell.activateById(PANEL_ID);
        return undefined;
      }
    });
    palette?.addItem({ command: TOGGLE_COMMAND, category: 'Agent' });

    // "Fix this error" on a cell that shows an error: a panel turn that explains it and proposes
    // the fix as an edit_cell the user approves (the kernel reads the cell from the document).
    app.commands.addCommand(FIX_COMMAND, {
      label: 'Agent: Fix this error',
      caption: "Ask the agent to explain the active cell's error and propose a fix",
      icon: agentIcon,
      isEnabled: () => showsError(tracker.currentWidget?.content.activeCell ?? null),
      execute: () => {
        const nb = tracker.currentWidget;
        const cell = nb?.content.activeCell;
        if (!nb || !cell) {
          return undefined;
        }
        follow(nb);
        shell.activateById(PANEL_ID);
        connectionFor(nb).fix(cell.model.id);
        return undefined;
      }
    });
    palette?.addItem({ command: FIX_COMMAND, category: 'Agent' });
    app.contextMenu.addItem({ command: FIX_COMMAND, selector: '.jp-Notebook .jp-CodeCell', rank: 0 });

    const apply = (raw: Partial<ISettings>): void => {
      Object.assign(settings, { ...DEFAULTS, ...raw });
      panel.settings = { showReasoning: settings.showReasoning, sendOnEnter: settings.sendOnEnter };
      if (settings.position !== area) {
        area = settings.position;
        if (placed) {
          place();
        }
      }
    };
    if (registry) {
      void Promise.all([registry.load(PLUGIN_ID), app.restored])
        .then(([loaded]) => {
          apply(loaded.composite);
          loaded.changed.connect(() => apply(loaded.composite));
        })
        .catch(reason => console.error('jupyter-agent: cannot load settings', reason));
    }
  }
};

/** The cell is a code cell with an error output. */
function showsError(cell: Cell | null): boolean {
  return cell instanceof CodeCell && cell.model.outputs.toJSON().some(output => output.output_type === 'error');
}

export default plugin;
