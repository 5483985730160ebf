// Imported first by every entry point in bin/: they run on the Node that `npm ci` installs
// (node_modules/.bin/node, the same major as the Lambda runtime), which `npm run` and `npx` put first
// on PATH. Started some other way on another Node, say so plainly instead of failing later on a
// missing API.

const PINNED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major !== PINNED_MAJOR) {
  process.stderr.write(
    `dialgate: this runs on Node ${PINNED_MAJOR}, the one \`npm ci\` installs in node_modules/.bin; ` +
      `this is Node ${process.versions.node}. Start it with \`npm run …\` or \`npx …\`.\n`,
  );
  process.exit(1);
}
