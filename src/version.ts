/** The release version; kept equal to package.json by test/version.test.ts. */
export const VERSION = '0.1.0';
