//! `spindle serve`: configuration and the running node.
