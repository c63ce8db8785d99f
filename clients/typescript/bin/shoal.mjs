#!/usr/bin/env node
// Placeholder until the CLI lands: the bin must exist for npm to link it.
console.error('shoal: the CLI is not built yet');
process.exit(1);
