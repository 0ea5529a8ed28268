import test from 'ava';
import {containerFrom, strataSubject} from './_helpers.js';
import {layerSuite} from './_layerSuite.js';

layerSuite(test, 'strata view', async (t, layers) => strataSubject((await containerFrom(t, layers)).view));
