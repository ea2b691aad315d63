// The daemon loop and config loading arrive with issue 3.
import CloseWaitCore
