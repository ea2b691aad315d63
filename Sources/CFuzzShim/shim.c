/* Header-only: declarations for closewaitd-fuzz. */
