CREATE TABLE "usage_recent_models" (
	"day" date NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"requests" bigint NOT NULL,
	"failed" bigint NOT NULL,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"cached_tokens" bigint NOT NULL,
	"cost_micros" bigint NOT NULL,
	"unpriced_requests" bigint NOT NULL,
	"rolled_to" timestamp with time zone NOT NULL,
	CONSTRAINT "usage_recent_models_day_provider_model_pk" PRIMARY KEY("day","provider","model")
);
