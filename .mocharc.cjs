// Mocha merges positional spec arguments with a configured `spec`, so `npx mocha FILE` would
// run the whole suite: the default spec applies only when no test file is named.
const named = process.argv.slice(2).some((a) => /\.test\.ts$/.test(a) || /\*/.test(a));
// The tests inject the stand-ins of our images (samples/images), not the images of the last
// `npm run images`: their digests stay put while the code changes (docs/images.md).
process.env.CONTRAST_IMAGE_LOCK ??= require('node:path').join(__dirname, 'samples', 'images', 'image-lock.json');
module.exports = {
  'node-option': ['import=tsx'],
  extension: ['ts'],
  ...(named ? {} : { spec: ['test/**/*.test.ts'] }),
  timeout: 120000,
  recursive: true,
  reporter: './test/helpers/reporter.cjs',
};
