package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux exports
// them in USER_HZ, which is 100 on every architecture Go supports.
const userHZ = 100

// errProcFormat means a /proc file did not have the expected shape.
var errProcFormat = errors.New("loadbench: unexpected /proc format")

// parseStatCPU returns the user plus system CPU time (fields 14 and 15,
// utime and stime) of a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat has no command name", errProcFormat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields after the command name", errProcFormat, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%w: utime/stime: %v", errProcFormat, err)
	}
	const maxTicks = math.MaxInt64 / uint64(time.Second/userHZ)
	if utime > maxTicks || stime > maxTicks-utime {
		return 0, fmt.Errorf("%w: utime/stime out of range", errProcFormat)
	}
	return time.Duration(utime+stime) * (time.Second / userHZ), nil
}

// parseVmHWM returns the peak resident set size (VmHWM) of a
// /proc/<pid>/status file, in bytes.
func parseVmHWM(status []byte) (uint64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: VmHWM line %q", errProcFormat, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > math.MaxUint64/1024 {
			return 0, fmt.Errorf("%w: VmHWM %q", errProcFormat, f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("%w: no VmHWM line in status", errProcFormat)
}

// processCPU returns the CPU time process pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// processPeakRSS returns the peak resident set size of process pid, in bytes.
func processPeakRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmHWM(b)
}
