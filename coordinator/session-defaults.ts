// Defaults of the coordinator's session limits that the command line shows in its help: kept
// apart from the coordinator so that `mtl --help` does not load the server.

/** Default of CoordinatorOptions.maxSessions: most Connect streams open at once. */
export const DEFAULT_MAX_SESSIONS = 256;
