/*
 * The table of report formats; see report.h. Adding a format is adding its
 * renderers and one row here.
 */
#include "report.h"

#include <stdio.h>
#include <string.h>

const struct ld_report_format ld_report_formats[] = {
	{ "text", ld_report_diff_text, ld_report_show_text, true },
	{ "json", ld_report_diff_json, ld_report_show_json, false },
	{ "markdown", ld_report_diff_markdown, NULL, false },
	{ "html", ld_report_diff_html, ld_report_show_html, false },
	{ NULL, NULL, NULL, false },
};

const struct ld_report_format *ld_report_format_find(const char *name, bool show)
{
	for (const struct ld_report_format *f = ld_report_formats; f->name; f++)
		if (strcmp(f->name, name) == 0 && (f->show || !show))
			return f;
	return NULL;
}

void ld_report_format_names(bool show, char *buf, size_t size)
{
	size_t total = 0, n = 0, o = 0;
	for (const struct ld_report_format *f = ld_report_formats; f->name; f++)
		total += f->show || !show;
	if (size)
		buf[0] = '\0';
	for (const struct ld_report_format *f = ld_report_formats; f->name && o < size; f++) {
		if (!f->show && show)
			continue;
		const char *sep = n == 0 ? "" : n + 1 == total ? " or " : ", ";
		int k = snprintf(buf + o, size - o, "%s%s", sep, f->name);
		if (k < 0)
			break;
		o += (size_t)k;
		n++;
	}
}
