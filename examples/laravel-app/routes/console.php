<?php

use Illuminate\Support\Facades\Artisan;

Artisan::command('app:release', function () {
    $this->line('release: '.release_name());
})->purpose('Print the release directory this code runs from');
