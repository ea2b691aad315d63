// The libsystemd wrappers arrive with the daemon (issue 3).
import CSystemd
