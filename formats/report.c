/*
 * The table of report formats; see report.h. Adding a format is adding its
 * renderers and one row here.
 */
#include "report.h"

#include <string.h>

const struct ld_report_format ld_report_formats[] = {
	{ "text", ld_report_diff_text, ld_report_show_text, true },
	{ "json", ld_report_diff_json, ld_report_show_json, false },
	{ "markdown", ld_report_diff_markdown, NULL, false },
	{ NULL, NULL, NULL, false },
};

const struct ld_report_format *ld_report_format_find(const char *name, bool show)
{
	for (const struct ld_report_format *f = ld_report_formats; f->name; f++)
		if (strcmp(f->name, name) == 0 && (f->show || !show))
			return f;
	return NULL;
}
