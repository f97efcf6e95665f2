// Package source reads memory for the Difference Engine from where it lives:
// raw image files, ELF core files (gcore, QEMU dump-guest-memory), Firecracker
// snapshot memory files and live processes.
//
// In a nutshell: a Source is a list of regions (address ranges) whose pages it
// streams, in order, into a Sink: whole pages as data, and runs of pages it
// knows to be zero (file holes found with SEEK_DATA/SEEK_HOLE, the p_memsz >
// p_filesz tail of a core segment) as a count, so they cost nothing to read.
// Nothing is ever loaded whole: files are read in 4 MiB chunks, live processes
// with one process_vm_readv per 4 MiB batch.
//
// File sources are also Rereadable: ReadPage reads any page again, by its
// number in Scan's order, so the engine can hash and index a file without
// keeping a copy of its pages and re-read them when it needs their bytes
// (checking each against its hash: a file changed since the scan is an
// error, never a wrong result). Live processes are not: their memory moves.
//
// Every source belongs to a trust domain. A live process's default domain is
// "uid:<uid>" (processes of one user can already read each other's memory,
// so sharing among them widens nothing); every file is its own domain.
//
// Sizes that are not a multiple of the page size (raw files only) are padded
// with zeros to a whole page; Region.Len keeps the exact byte count so that an
// unpack restores the exact size. File sources also keep the bytes of the file
// that are not memory (ELF headers and notes) as a residue, so that the file
// can be rebuilt bit for bit.
//
// Bad input never panics: a truncated or corrupt file is an error that names
// the file and what is wrong; a process that exits mid-read is ErrProcessGone;
// mappings that cannot be read ([vvar], PROT_NONE) are skipped and reported in
// Skipped.
package source
