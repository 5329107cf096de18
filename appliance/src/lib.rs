//! The Front Desk appliance daemon and CLI (binary `frontdesk`).
