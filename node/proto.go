package node

// The exec protocol between `vmux exec` (or any caller of Exec) and a node's
// init, over a SOCK_SEQPACKET unix socket (message boundaries kept):
//
//	client -> init: execRequest, with stdin, stdout, stderr as SCM_RIGHTS
//	init -> client: execReply{Pid} once started, or {Error}
//	client -> init: execSignal, any number, forwarded to the process group
//	init -> client: execReply{Exited: true, ...} when the process ends
//
// If the client goes away first, init kills the process group.

type execRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

type execSignal struct {
	Signal int `json:"signal"`
}

type execReply struct {
	Pid    int    `json:"pid,omitempty"`
	Error  string `json:"error,omitempty"`
	Exited bool   `json:"exited,omitempty"`
	Code   int    `json:"code,omitempty"`
	Signal int    `json:"signal,omitempty"`
}

// maxMsg bounds one protocol message (the environment is the large part).
const maxMsg = 1 << 20
