package node

// The exec protocol between `vmux exec` (or any caller of Exec) and a node's
// init, over a SOCK_SEQPACKET unix socket (message boundaries kept):
//
//	client -> init: execRequest, with stdin, stdout, stderr as SCM_RIGHTS
//	init -> client: execReply{Pid} once started, or {Error}; with a TTY
//	                request, this message carries the pty master
//	                (SCM_RIGHTS) that the client relays its terminal through
//	client -> init: execSignal, any number, forwarded to the process group
//	init -> client: execReply{Exited: true, ...} when the process ends
//
// Only root outside the node may ask (init checks SO_PEERCRED on every
// connection; a refused peer gets execReply{Denied: true, Error}).
//
// If the client goes away first, init kills the process group.

type execRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// TTY asks for a pseudo-terminal as the command's controlling
	// terminal and stdio, of size Rows x Cols.
	TTY  bool   `json:"tty,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

type execSignal struct {
	Signal int `json:"signal"`
}

type execReply struct {
	Pid    int    `json:"pid,omitempty"`
	PTY    bool   `json:"pty,omitempty"`
	Error  string `json:"error,omitempty"`
	Denied bool   `json:"denied,omitempty"` // Error is init's refusal of this peer
	Exited bool   `json:"exited,omitempty"`
	Code   int    `json:"code,omitempty"`
	Signal int    `json:"signal,omitempty"`
	// Status, with Error: the status a shell gives a command it could not
	// start (StatusNotFound, StatusNotExecutable), 0 if not the command's
	// fault.
	Status int `json:"status,omitempty"`
}

// maxMsg bounds one protocol message (the environment is the large part).
const maxMsg = 1 << 20
