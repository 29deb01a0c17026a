// Placeholder until the curl client lands.
