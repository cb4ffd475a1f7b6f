import { preset } from '@tessera/vitest-preset';

export default preset();
