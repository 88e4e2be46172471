// Package node assembles a Meridian node: configuration loading and hot reload, the data plane, and the admin listener.
package node
