/** OCI image-spec layer.md, "Whiteouts": `.wh.<name>` hides <name> below; this name makes its directory opaque. */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
