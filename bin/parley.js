#!/usr/bin/env node
// The CLI is TypeScript run directly by Node 24's type stripping.
import '../src/main.ts';
