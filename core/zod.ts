/**
 * zod with `.openapi()` (examples, parameter docs, component names) installed. zod 4 gives each
 * schema its methods when it is built, so the extension must run before any schema that the
 * OpenAPI document describes is created: every module that builds such schemas (the job
 * catalogue, the API's routes) imports `z` from here, whatever order the modules load in.
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);

export { z };
