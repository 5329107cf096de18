//! Admin web UI for the LAN.
