// Package child starts server processes that die with the process that
// started them, for the servers tests and benchmarks run.
package child

import (
	"io"
	"os/exec"
	"runtime"
	"syscall"
)

// Start starts cmd with its output to out and SIGKILL as its parent-death
// signal, then waits for it in the background; done closes (after out is
// closed) once it has exited.
func Start(cmd *exec.Cmd, out io.WriteCloser) (done <-chan struct{}, err error) {
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	ch := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the starting thread exits: keep this thread
		// alive (locked to this goroutine) for as long as the child runs.
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		out.Close()
		close(ch)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return ch, nil
}
