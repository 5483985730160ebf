// The API reference page: Redoc (its standalone bundle, served beside this file) renders the API's
// own OpenAPI document, fetched from this origin like every other API call of the console. Redoc
// replaces the loading note inside #reference; a failure is written there instead.

// @ts-expect-error: the bundle ships no types; only `init` is used.
import { init } from './redoc.standalone.js';

const root = /** @type {HTMLElement} */ (document.getElementById('reference'));
const system = 'system-ui, -apple-system, "Segoe UI", sans-serif';

try {
  const response = await fetch('openapi.json', { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
  // System fonts: the page loads nothing from elsewhere.
  const theme = {
    typography: {
      fontFamily: system,
      headings: { fontFamily: system },
      code: { fontFamily: 'ui-monospace, monospace' },
    },
  };
  // No usage reports to Redocly: the page talks to this origin only (its policy says so too).
  init(await response.json(), { theme, disableTelemetry: true }, root);
} catch (error) {
  const note = document.createElement('p');
  note.setAttribute('role', 'alert');
  note.textContent = `The API reference could not be shown: ${error instanceof Error ? error.message : error}`;
  root.replaceChildren(note);
}
