/*
 * The HTML report: one self-contained page with the JSON report's document
 * (render_json.c, so there is one data model) and the flame graph's tree
 * (flame.c) embedded as data, and the scripts and styles that draw them
 * (formats/html/, bundled into the binary at build time as html_assets.c).
 * Nothing from a snapshot is written into markup: every name travels inside
 * the JSON block, escaped so that it cannot end the block, and the page's
 * script puts it on the page as text.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

#include "flame.h"
#include "html_assets.h"
#include "report.h"
#include "report_common.h"

/*
 * Frames narrower than this share of the whole are summed per parent: at
 * 0.1% a frame is about a pixel on a wide screen, and a 100k-site diff
 * stays a few megabytes.
 */
#define FLAME_MIN_SHARE 0.001

static const char page_head[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<meta name=\"generator\" content=\"leakdiff\">\n"
	"<title>leakdiff report</title>\n<style>\n";

static const char page_body[] =
	"</style>\n</head>\n<body>\n"
	"<noscript><p>This report draws itself with JavaScript; the same data is in the "
	"leakdiff-data block of this file, as leakdiff's JSON report.</p></noscript>\n"
	"<main id=\"app\" aria-live=\"polite\"></main>\n"
	"<script type=\"application/json\" id=\"leakdiff-data\">";

static int render(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o, bool show)
{
	cJSON *root;
	int rc = ld_report_json_tree(d, o, show, &root);
	if (rc)
		return rc;
	struct ld_flame f;
	rc = ld_flame_build(&f, d);
	cJSON *tree = rc ? NULL : ld_flame_json(&f, FLAME_MIN_SHARE);
	ld_flame_finish(&f);
	if (!tree) {
		cJSON_Delete(root);
		return rc ? rc : -ENOMEM;
	}
	cJSON_AddItemToObject(root, "flame", tree);
	char *json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!json)
		return -ENOMEM;
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_puts(&b, page_head);
	ld_buf_puts(&b, ld_html_style);
	ld_buf_puts(&b, page_body);
	ld_escape_json_html(&b, json);
	cJSON_free(json);
	ld_buf_puts(&b, "</script>\n<script>\n");
	ld_buf_puts(&b, ld_html_library);
	ld_buf_puts(&b, "\n</script>\n<script>\n");
	ld_buf_puts(&b, ld_html_page);
	ld_buf_puts(&b, "\n</script>\n</body>\n</html>\n");
	return ld_report_write(out, &b);
}

int ld_report_diff_html(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	return render(out, d, o, false);
}

int ld_report_show_html(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	return render(out, d, o, true);
}
