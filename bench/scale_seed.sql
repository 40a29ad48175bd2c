-- nova-sized data for bench/scale_bench.py, made by PostgreSQL itself (no Python per row).
-- :n is the number of submissions (one image and one job each).  Of the jobs 97 % are
-- solved (centres uniform on the sky, field radii 0.05 to 30 degrees, most under 2), 2 % failed,
-- and the newest :queued are queued.  Three users own 33 %, 10 % and 2 % of them; the
-- rest are anonymous uploads of 20,000 sessions.  One in ten submissions is private.
-- Tag 1 ("Milky Way") is on 15 % of the solved images, tag 2 ("Whirlpool Galaxy") on
-- 0.2 %, and every solved image has one of 300 others.  Image 1 has 300 user tags and
-- 600 comments (the page of an image with hundreds of both).
\set ON_ERROR_STOP on
SET synchronous_commit = off;

INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
VALUES (1, '!', false, 'big', '', '', '', false, true, now()),
       (2, '!', false, 'mid', '', '', '', false, true, now()),
       (3, '!', false, 'small', '', '', '', false, true, now());
SELECT setval(pg_get_serial_sequence('auth_user', 'id'), 3);
INSERT INTO submissions_apikey (user_id, key, label, created)
VALUES (1, 'scalebenchbigkey', 'bench', now()), (2, 'scalebenchmidkey', 'bench', now());

INSERT INTO submissions_tag (id, text)
SELECT t, CASE t WHEN 1 THEN 'Milky Way' WHEN 2 THEN 'Whirlpool Galaxy'
                 ELSE 'NGC ' || (t * 17) END
FROM generate_series(1, 302) AS t;
SELECT setval(pg_get_serial_sequence('submissions_tag', 'id'), 302);

-- Who and when, decided once per submission.
CREATE TEMP TABLE seed AS
SELECT i,
       CASE WHEN i % 100 < 33 THEN 1 WHEN i % 100 < 43 THEN 2 WHEN i % 100 < 45 THEN 3 END AS uid,
       'bench' || (i % 20000) AS session,
       now() - ((:n - i) * interval '20 seconds') AS at,
       CASE WHEN i % 10 = 7 THEN 'n' ELSE 'y' END AS visible,
       CASE WHEN i > :n - :queued THEN 'queued'
            WHEN i % 50 = 3 THEN 'failure' ELSE 'success' END AS status,
       random() * 360 AS ra,
       degrees(asin(2 * random() - 1)) AS dec,
       exp(ln(0.05) + power(random(), 3) * ln(600.0)) AS radius
FROM generate_series(1, :n) AS i;

INSERT INTO submissions_submission (id, anonymous_session, created, source, original_filename, url,
    disk_file, file_hash, file_size, star_list, parameters, request_json, allow_commercial_use,
    allow_modifications, publicly_visible, processing_started, processing_finished,
    error_message, album_id, user_id, last_polled)
SELECT i, CASE WHEN uid IS NULL THEN session ELSE '' END, at, 'upload', 'frame' || i || '.fits', '',
       '', md5(i::text)::varchar(40), 4000000, NULL, '{"downsample_factor": 2}', '{}', 'd', 'd',
       visible, at, at, '', NULL, uid, NULL
FROM seed;

INSERT INTO submissions_userimage (id, original_filename, description, publicly_visible, created,
    submission_id, user_id, star_list, archive_member, disk_file)
SELECT i, 'frame' || i || '.fits', '', visible, at, i, uid, NULL, NULL, ''
FROM seed;

INSERT INTO submissions_job (id, owner_key, status, stage, queued_at, started_at, finished_at,
    attempts, worker_id, lease_expires, cancel_requested, error_code, error_message, log, result,
    ra, dec, radius, pixscale, orientation, parity, width_arcsec, height_arcsec, user_image_id,
    last_polled)
SELECT i,
       CASE WHEN uid IS NULL THEN 'anon:' || session ELSE 'user:' || uid END,
       status,
       CASE WHEN status = 'queued' THEN '' ELSE 'finished' END,
       at,
       CASE WHEN status = 'queued' THEN NULL ELSE at + interval '2 seconds' END,
       CASE WHEN status = 'queued' THEN NULL ELSE at + interval '9 seconds' END,
       CASE WHEN status = 'queued' THEN 0 ELSE 1 END,
       '', NULL, false,
       CASE WHEN status = 'failure' THEN 'no_match' ELSE '' END,
       CASE WHEN status = 'failure' THEN 'no match in the index files' ELSE '' END,
       CASE WHEN status = 'queued' THEN '' ELSE repeat('solve-field: a line of the log' || chr(10), 60) END,
       CASE WHEN status = 'success' THEN jsonb_build_object(
                'image_format', 'fits', 'image_width', 4000, 'image_height', 3000,
                'n_sources', 800,
                'files', jsonb_build_object('wcs', 'wcs.fits', 'annotated_display', 'a.jpg',
                                            'new_fits', 'new.fits', 'rdls', 'rdls.fits'),
                'objects_in_field', jsonb_build_array('NGC ' || (i % 300), 'IC ' || (i % 700)),
                'annotations', (SELECT jsonb_agg(jsonb_build_object('type', 'ngc', 'names',
                                 jsonb_build_array('NGC ' || k), 'pixelx', k * 10, 'pixely', k * 7,
                                 'radius', 20.5)) FROM generate_series(1, 20) AS k))
            END,
       CASE WHEN status = 'success' THEN ra END,
       CASE WHEN status = 'success' THEN dec END,
       CASE WHEN status = 'success' THEN radius END,
       CASE WHEN status = 'success' THEN radius * 3600 * 2 / 5000 END,
       CASE WHEN status = 'success' THEN 12.5 END,
       CASE WHEN status = 'success' THEN 1.0 END,
       CASE WHEN status = 'success' THEN radius * 3600 * 1.6 END,
       CASE WHEN status = 'success' THEN radius * 3600 * 1.2 END,
       i, NULL
FROM seed;

INSERT INTO submissions_taggeduserimage (machine, added, added_by_id, tag_id, user_image_id)
SELECT true, at, NULL::integer, 1, i FROM seed WHERE status = 'success' AND i % 100 < 15
UNION ALL
SELECT true, at, NULL::integer, 2, i FROM seed WHERE status = 'success' AND i % 500 = 11
UNION ALL
SELECT true, at, NULL::integer, 3 + (i::bigint * 7919) % 300, i FROM seed WHERE status = 'success';

INSERT INTO submissions_taggeduserimage (machine, added, added_by_id, tag_id, user_image_id)
SELECT false, now(), 2, t, 1 FROM generate_series(3, 302) AS t;

INSERT INTO submissions_comment (id, text, created, album_id, author_id, user_image_id)
SELECT c, 'comment number ' || c, now() - (c * interval '1 minute'), NULL, 1 + c % 3, 1
FROM generate_series(1, 600) AS c;

INSERT INTO submissions_album (id, owner_id, title, description, publicly_visible, created)
SELECT a, 1 + a % 3, 'album ' || a, '', 'y', now() - (a * interval '1 hour')
FROM generate_series(1, 2000) AS a;
INSERT INTO submissions_album_user_images (album_id, userimage_id)
SELECT 1, i FROM seed WHERE uid = 2 AND i < 200000;

ANALYZE;
