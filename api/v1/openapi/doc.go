// Package openapi generates the OpenAPI 3.1 description of Meridian's REST API from the api/v1 Go types.
package openapi
