// `npm run openapi`: writes docs/openapi.json from the API's zod schemas, and the CLI's types from it.

import { writeFile } from 'node:fs/promises';
import { CLIENT_TYPES_PATH, clientTypesText, OPENAPI_PATH, openApiText } from './document.ts';

await writeFile(OPENAPI_PATH, openApiText());
console.log(`wrote ${OPENAPI_PATH}`);
await writeFile(CLIENT_TYPES_PATH, await clientTypesText());
console.log(`wrote ${CLIENT_TYPES_PATH}`);
