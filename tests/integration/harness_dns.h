/* A tiny DNS server for the integration tests (UDP, in a thread of the test process), whose
 * answers a test changes while a gateway asks it: A records from a table, AAAA empty, other
 * names NXDOMAIN; or SERVFAIL to every query; or no answer at all. */
#ifndef LINTEL_IT_HARNESS_DNS_H
#define LINTEL_IT_HARNESS_DNS_H

enum it_dns_mode {
    IT_DNS_ANSWER,   /* answer from the table */
    IT_DNS_SERVFAIL, /* SERVFAIL to everything */
    IT_DNS_SILENT,   /* read queries, answer nothing */
};

struct it_dns;

/* Starts the server on 127.0.0.1:port (UDP). Returns NULL (reported on stderr) on failure. */
struct it_dns *it_dns_start(int port);

/* Sets the A records of name (case-insensitive) to the comma-separated IPv4 addresses in ips
 * ("127.0.0.1,127.0.0.2"); NULL removes the name (NXDOMAIN). Any thread. */
void it_dns_set(struct it_dns *d, const char *name, const char *ips);

void it_dns_mode(struct it_dns *d, enum it_dns_mode mode);

/* Queries received so far (A and AAAA both count). */
unsigned it_dns_queries(struct it_dns *d);

/* Stops the thread and frees d. NULL is ignored. */
void it_dns_stop(struct it_dns *d);

#endif
