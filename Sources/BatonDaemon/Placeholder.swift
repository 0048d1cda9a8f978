// Placeholder until the BatonDaemon module lands.
