"""Phone classification (s3prl's phone_linear, phone_linear_concat, phone_1hidden): one phone per 10 ms frame."""
