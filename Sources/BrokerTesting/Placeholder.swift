// Provider simulators land here.
