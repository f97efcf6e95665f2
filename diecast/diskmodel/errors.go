package diskmodel

import "errors"

// ErrBadModel: a model that cannot be served (factor out of range).
var ErrBadModel = errors.New("bad disk model")

// ErrBadArgs: the role was started with arguments or descriptors it
// cannot use.
var ErrBadArgs = errors.New("bad disk model arguments")
