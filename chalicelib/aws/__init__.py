"""AWS as trailguard meets it: clients in each account and region (through the member role
elsewhere), its own calls noted, retries of AWS's "not yet", errors told in one line, the
shapes AWS writes the same thing in (quirks, resource policies), DynamoDB items and KMS seals."""
