import { test } from 'vitest';
import { z } from 'zod';
import { manifestSchema } from '../src/manifest.js';
import { parseStoreMaster } from '../src/store-master.js';
test('probe', () => {
  console.log(JSON.stringify(z.toJSONSchema(manifestSchema, { target: 'draft-2020-12', io: 'input' }), null, 2));
  console.log(parseStoreMaster('AreaCode,StoreName,StoreID\n1,THE "CORNER" STORE,S1\n2,"a ""b"", c",S2', 'x'));
});
