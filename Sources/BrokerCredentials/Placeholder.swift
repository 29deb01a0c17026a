// Credential injection lands here.
