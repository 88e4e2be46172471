// Package v1 holds Meridian's resource types, their defaults and validation: the one contract shared by the console, the nodes and the CLI.
package v1
