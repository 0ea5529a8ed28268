import {CatCommand} from './cat.js';
import {ImageExportCommand} from './image/export.js';
import {ImageImportCommand} from './image/import.js';
import {ImageInspectCommand} from './image/inspect.js';
import {ImagesCommand} from './image/list.js';
import {ImageRmCommand} from './image/rm.js';
import {ImageTagCommand} from './image/tag.js';
import {ImportCommand} from './import.js';
import {InitCommand} from './init.js';
import {LayerExportCommand} from './layer/export.js';
import {LayerInspectCommand} from './layer/inspect.js';
import {LayersCommand} from './layer/list.js';
import {LsCommand} from './ls.js';

/** Every command of strata, in the order help lists them. */
export const commands = [
  InitCommand,
  ImportCommand,
  ImagesCommand,
  ImageInspectCommand,
  ImageTagCommand,
  ImageRmCommand,
  ImageImportCommand,
  ImageExportCommand,
  LayersCommand,
  LayerInspectCommand,
  LayerExportCommand,
  LsCommand,
  CatCommand,
];
