-- The most messages a second an endpoint is sent; null, as for every endpoint so far, is no limit.
ALTER TABLE "webhook_endpoints" ADD COLUMN "rate_limit" integer;