"""AWS adapters of the stream path (DynamoDB, S3, SNS, KMS) and provisioning. Nothing else calls the SDK there."""
