/*
 * The scripts and styles of the HTML report, generated at build time by
 * formats/html/embed.py from the npm packages that scripts/setup installs
 * (formats/html/package.json) and the page's own report.js and report.css.
 * Each is a NUL-terminated string that contains no "</script" or "</style"
 * (embed.py refuses one that does), so it can be inlined as it is.
 */
#ifndef LD_FORMATS_HTML_ASSETS_H
#define LD_FORMATS_HTML_ASSETS_H

/* d3's modules and d3-flame-graph, in the order they load. */
extern const char ld_html_library[];
/* The page's script (formats/html/report.js). */
extern const char ld_html_page[];
/* The page's styles: d3-flame-graph's and report.css. */
extern const char ld_html_style[];

#endif
