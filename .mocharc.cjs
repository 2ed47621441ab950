// Mocha merges positional spec arguments with a configured `spec`, so `npx mocha FILE` would
// run the whole suite: the default spec applies only when no test file is named.
const named = process.argv.slice(2).some((a) => /\.test\.ts$/.test(a) || /\*/.test(a));
module.exports = {
  'node-option': ['import=tsx'],
  extension: ['ts'],
  ...(named ? {} : { spec: ['test/**/*.test.ts'] }),
  timeout: 120000,
  recursive: true,
  reporter: './test/helpers/reporter.cjs',
};
