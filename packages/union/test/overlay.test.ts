import test from 'ava';
import {kernelSubject, overlayLowers} from './_overlay.js';
import {layerSuite} from './_layerSuite.js';

// The same cases over a kernel overlayfs mount of the same layers: proves the cases
// state what Linux does, so the strata view passing them behaves as overlayfs does.
layerSuite(test, 'kernel overlayfs', async (t, layers) => kernelSubject(t, overlayLowers(t, layers)));
