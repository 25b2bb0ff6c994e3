// gortc.io/stun is not served by the module proxy this project builds through.
// netclient uses five of its names in stun/stun.go; pion/stun is the maintained
// fork with the same API, so this module re-exports those names from it.
module gortc.io/stun

go 1.21

require github.com/pion/stun v0.6.1
