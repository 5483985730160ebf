// `npm run openapi`: writes docs/openapi.json from the API's zod schemas, and the CLI's types from it.

import { writeFile } from 'node:fs/promises';
import { OPENAPI_PATH, openApiText } from './document.ts';

await writeFile(OPENAPI_PATH, openApiText());
console.log(`wrote ${OPENAPI_PATH}`);
