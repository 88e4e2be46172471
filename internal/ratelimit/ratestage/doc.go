// Package ratestage plugs a RateLimiter into the data-plane pipeline (the "ratelimit" slot of dataplane.Order).
package ratestage
