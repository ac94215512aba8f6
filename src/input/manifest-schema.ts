/**
 * The manifest rules built with zod, for JSON Schema (schema/manifest.schema.json)
 * and whoever wants them as a zod schema. Validation itself (`parseManifest`)
 * does not load this module.
 */
import { z } from 'zod';

import { buildManifestSchema } from './manifest.js';

export const manifestSchema = buildManifestSchema(z);
