//! End-to-end tests with real peers (baresip, SIPp, kamailio, Chromium).
